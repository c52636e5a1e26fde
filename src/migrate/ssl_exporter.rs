//! ssl_exporter's `modules:` (2.4) onto ours: the `https` and `tcp` probers become profiles with
//! `output: ssl_exporter`; `file`, `kubernetes` and `kubeconfig` (certificates at rest, not TLS
//! endpoints) are listed as skipped.
//!
//! The shared `tls_config` block is `tls_config`'s, the YAML is `profile`'s.

use super::profile::{Document, Output, Profile};
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
    let mut doc = Document {
        notes: Vec::new(),
        skipped: Vec::new(),
        modules: Vec::new(),
    };
    if let Some(default) = top.take("default_module") {
        doc.notes.push(format!(
            "ssl_exporter: default_module: {default} has no equivalent: /probe without module= \
             uses the global settings; add module: [{default}] to the scrape job's params"
        ));
    }
    for (key, _) in top.rest() {
        doc.notes.push(format!(
            "ssl_exporter: top-level {key} is not an ssl_exporter setting (ignored)"
        ));
    }
    let mut problems = Vec::new();
    for (name, node) in &modules {
        match module(name, node) {
            Ok(Ok(p)) => doc.modules.push(p),
            Ok(Err(why)) => doc.skipped.push(format!("{name}: {why}")),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(problems)
    }
}

/// One module: `Ok(Err(why))` when it is not a TLS probe.
fn module(name: &str, node: &Node) -> Result<Result<Profile, String>, Problem> {
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
        return Ok(Err(format!("prober {prober} ({what})")));
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
        other => return Ok(Err(format!("prober {other}, unknown to ssl_exporter 2.4"))),
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
    Ok(Ok(p))
}
