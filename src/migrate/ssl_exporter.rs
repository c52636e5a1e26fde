//! ssl_exporter's `modules:` (2.4) onto ours: the `https` and `tcp` probers become profiles with
//! `output: ssl_exporter`; `file`, `kubernetes` and `kubeconfig` (certificates at rest, not TLS
//! endpoints) are listed as skipped.
//!
//! The shared `tls_config` block is `tls_config`'s, the YAML is `profile`'s.

use super::profile::{Document, Migrated, Output, Profile};
use super::tree::Node;
use super::{modules_of, tls_config, Say};
use crate::config::{Problem, StartTls};

/// Probers that read certificates at rest, and what they read.
const AT_REST: [(&str, &str); 3] = [
    ("file", "reads certificate files"),
    ("kubernetes", "reads Kubernetes TLS secrets"),
    ("kubeconfig", "reads the certificates of a kubeconfig"),
];
/// A module's per-prober sections; those of another prober are ignored, as ssl_exporter does.
const SECTIONS: [&str; 3] = ["https", "tcp", "kubernetes"];

/// Our modules for an ssl_exporter config file; problems of every module at once.
pub(super) fn migrate(root: &Node) -> Result<Document, Vec<Problem>> {
    let (mut top, modules) = modules_of(root).map_err(|p| vec![p])?;
    let mut notes = Vec::new();
    if let Some(default) = top.take("default_module") {
        notes.push(format!(
            "ssl_exporter: default_module: {default} has no equivalent: /probe without module= \
             uses the global settings; add module: [{default}] to the scrape job's params"
        ));
    }
    for (key, _) in top.rest() {
        notes.push(format!(
            "ssl_exporter: top-level {key} is not an ssl_exporter setting (ignored)"
        ));
    }
    Document::of_modules(notes, &modules, module)
}

/// One module, or why it is skipped.
fn module(name: &str, node: &Node) -> Result<Migrated, Problem> {
    let path = format!("modules.{name}");
    let mut m = node.fields(&path)?;
    let say = Say::new("ssl_exporter", "ssl_exporter", name);
    let Some(prober) = m.string("prober")? else {
        return Err(node.problem(
            &path,
            "no prober (https, tcp, file, kubernetes, kubeconfig)",
        ));
    };
    if let Some((_, what)) = AT_REST.iter().find(|(p, _)| *p == prober) {
        return Ok(Migrated::Skipped(format!("prober {prober} ({what})")));
    }
    let mut p = Profile::new(name, Output::SslExporter);
    match prober.as_str() {
        "https" => {
            p.note(say.text(
                "prober https → a TLS handshake, and for https:// targets one GET of the URL's \
                 path",
            ));
            if let Some(mut https) = m.fields("https")? {
                if let Some(url) = https.string("proxy_url")? {
                    p.proxy_url = Some(url);
                }
                say.rest(&mut p, https, &[]);
            }
        }
        "tcp" => {
            if let Some(mut tcp) = m.fields("tcp")? {
                if let Some(name) = tcp.string("starttls")? {
                    match StartTls::ALL.into_iter().find(|s| s.as_str() == name) {
                        Some(protocol) => p.starttls = Some(protocol),
                        None => p.note(say.text(&format!(
                            "tcp.starttls: {name} is not a protocol tls_exporter speaks (one of {})",
                            StartTls::ALL.map(StartTls::as_str).join(", ")
                        ))),
                    }
                }
                say.rest(&mut p, tcp, &[]);
            }
        }
        other => {
            return Ok(Migrated::Skipped(format!(
                "prober {other}, unknown to ssl_exporter 2.4"
            )))
        }
    }
    if let Some(target) = m.take("target") {
        let text = target.string(&m.path_of("target"))?;
        p.note(say.text(&format!(
            "target: {target} has no equivalent in a module: make it a target of its own \
             (address: {text}, module: {name})"
        )));
    }
    if let Some(t) = m.take("timeout") {
        let text = t.string(&m.path_of("timeout"))?;
        match crate::config::parse_duration(&text) {
            Ok(_) => p.timeout = Some(text),
            Err(e) => p.note(say.text(&format!("timeout: {e} (ignored)"))),
        }
    }
    if let Some(tls) = m.fields("tls_config")? {
        tls_config::map(tls, &mut p, &say)?;
    }
    for section in SECTIONS {
        if m.take(section).is_some() {
            p.note(say.text(&format!(
                "{section} is not used by prober {prober} (ignored, as ssl_exporter does)"
            )));
        }
    }
    say.rest(&mut p, m, &[]);
    Ok(Migrated::Profile(Box::new(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<Profile, String> {
        let root = crate::config::parse_as::<Node>(yaml, "").expect("parses");
        let doc = migrate(&root).expect("migrates");
        match (doc.modules.as_slice(), doc.skipped.as_slice()) {
            ([p], []) => Ok(p.clone()),
            ([], [why]) => Err(why.clone()),
            _ => panic!("not one module: {doc:?}"),
        }
    }

    #[test]
    fn tcp_starttls_names_map_to_ours() {
        for name in ["smtp", "ftp", "imap", "postgres", "pop3"] {
            let p = one(&format!(
                "modules:\n  m:\n    prober: tcp\n    tcp:\n      starttls: {name}\n"
            ))
            .expect("migrated");
            assert_eq!(p.starttls.map(StartTls::as_str), Some(name));
            assert_eq!(p.output, Output::SslExporter);
        }
    }

    #[test]
    fn an_unknown_starttls_name_is_noted() {
        let p = one("modules:\n  m:\n    prober: tcp\n    tcp:\n      starttls: gopher\n")
            .expect("migrated");
        assert_eq!(p.starttls, None);
        assert!(
            p.notes[0]
                .1
                .starts_with("ssl_exporter: tcp.starttls: gopher is not a protocol"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn https_proxy_url_and_timeout_map() {
        let p = one("modules:\n  m:\n    prober: https\n    timeout: 3s\n    https:\n      proxy_url: http://127.0.0.1:3128\n")
            .expect("migrated");
        assert_eq!(p.proxy_url.as_deref(), Some("http://127.0.0.1:3128"));
        assert_eq!(p.timeout.as_deref(), Some("3s"));
    }

    #[test]
    fn a_module_target_becomes_advice_to_list_it() {
        let p = one("modules:\n  m:\n    prober: tcp\n    target: db:5432\n").expect("migrated");
        assert_eq!(
            p.notes,
            [(None, "ssl_exporter: target: db:5432 has no equivalent in a module: make it a target of its own (address: db:5432, module: m)".to_string())]
        );
    }

    #[test]
    fn certificates_at_rest_are_skipped() {
        for (prober, what) in AT_REST {
            let why = one(&format!("modules:\n  m:\n    prober: {prober}\n")).expect_err("at rest");
            assert_eq!(why, format!("m: prober {prober} ({what})"));
        }
    }

    #[test]
    fn default_module_is_noted() {
        let root = crate::config::parse_as::<Node>("default_module: https\nmodules: {}\n", "")
            .expect("parses");
        let doc = migrate(&root).expect("migrates");
        assert!(
            doc.notes[0].starts_with("ssl_exporter: default_module: https has no equivalent"),
            "{:?}",
            doc.notes
        );
    }

    #[test]
    fn a_module_without_prober_is_a_problem() {
        let root = crate::config::parse_as::<Node>("modules:\n  m:\n    timeout: 3s\n", "")
            .expect("parses");
        let problems = migrate(&root).expect_err("no prober");
        assert_eq!(
            problems[0].to_string(),
            "3:5: modules.m: no prober (https, tcp, file, kubernetes, kubeconfig)"
        );
    }
}
