//! What `migrate` writes: our `modules:` YAML, one `Profile` per migrated module, with the
//! comments that say what mapped how, and the document around them.
//!
//! The text is written here by hand (serde-saphyr's serializer writes no comments); values are
//! quoted whenever a plain scalar could be read as something else. What goes into a profile is
//! `blackbox`'s and `ssl_exporter`'s business.

use super::tree::Node;
use crate::config::{Problem, StartTls};

/// The `output:` of a migrated module: the other exporter's metric names, so that dashboards
/// and alerts written against them keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Blackbox,
    SslExporter,
}

impl Output {
    fn as_str(self) -> &'static str {
        match self {
            Output::Blackbox => "blackbox",
            Output::SslExporter => "ssl_exporter",
        }
    }
}

/// A setting of our module schema that a note can stand above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Timeout,
    IpProtocol,
    ServerName,
    CaFile,
    ClientCertFile,
    ClientKeyFile,
    StartTls,
    Http,
    ProxyUrl,
    Output,
}

/// One of our modules (a named probe profile), with notes as comments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) timeout: Option<String>,
    /// `ip4`, `ip6` (preferred family, the other as fallback).
    pub(crate) ip_protocol: Option<&'static str>,
    pub(crate) server_name: Option<String>,
    pub(crate) ca_file: Option<String>,
    pub(crate) client_cert_file: Option<String>,
    pub(crate) client_key_file: Option<String>,
    pub(crate) starttls: Option<StartTls>,
    /// `http: {host}`: the `Host` of the GET.
    pub(crate) http_host: Option<String>,
    pub(crate) proxy_url: Option<String>,
    pub(crate) output: Output,
    /// Comments, each above the setting it is about (`None`: at the top of the module, or when
    /// its setting is not written).
    pub(crate) notes: Vec<(Option<Key>, String)>,
}

impl Profile {
    /// An empty profile for module `name` with `output`.
    pub(crate) fn new(name: &str, output: Output) -> Profile {
        Profile {
            name: name.to_string(),
            timeout: None,
            ip_protocol: None,
            server_name: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            starttls: None,
            http_host: None,
            proxy_url: None,
            output,
            notes: Vec::new(),
        }
    }

    /// Adds a comment at the top of the module.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.notes.push((None, text.into()));
    }

    /// Adds a comment above setting `key`.
    pub(crate) fn note_on(&mut self, key: Key, text: impl Into<String>) {
        self.notes.push((Some(key), text.into()));
    }

    /// The settings that are set, in schema order, as `(key, name, value)`; `http` is a nested
    /// mapping, written by `render`.
    fn settings(&self) -> Vec<(Key, &'static str, String)> {
        let text = |v: &Option<String>| v.as_deref().map(scalar);
        [
            (Key::Timeout, "timeout", text(&self.timeout)),
            (Key::IpProtocol, "ip_protocol", self.ip_protocol.map(scalar)),
            (Key::ServerName, "server_name", text(&self.server_name)),
            (Key::CaFile, "ca_file", text(&self.ca_file)),
            (
                Key::ClientCertFile,
                "client_cert_file",
                text(&self.client_cert_file),
            ),
            (
                Key::ClientKeyFile,
                "client_key_file",
                text(&self.client_key_file),
            ),
            (
                Key::StartTls,
                "starttls",
                self.starttls.map(|p| p.as_str().to_string()),
            ),
            (
                Key::Http,
                "http",
                self.http_host
                    .as_deref()
                    .map(|h| format!("{{host: {}}}", scalar(h))),
            ),
            (Key::ProxyUrl, "proxy_url", text(&self.proxy_url)),
            (
                Key::Output,
                "output",
                Some(self.output.as_str().to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(key, name, value)| value.map(|v| (key, name, v)))
        .collect()
    }

    /// The module as YAML under `modules:` (indented two spaces), comments included.
    fn render(&self, out: &mut String) {
        out.push_str(&format!("  {}:\n", scalar(&self.name)));
        let settings = self.settings();
        let written: Vec<Key> = settings.iter().map(|(k, _, _)| *k).collect();
        for (key, text) in &self.notes {
            if key.is_none_or(|k| !written.contains(&k)) {
                comment(out, "    ", text);
            }
        }
        for (key, name, value) in settings {
            for (_, text) in self.notes.iter().filter(|(k, _)| *k == Some(key)) {
                comment(out, "    ", text);
            }
            out.push_str(&format!("    {name}: {value}\n"));
        }
    }
}

/// What became of one module of their file.
#[derive(Debug)]
pub(crate) enum Migrated {
    Profile(Box<Profile>),
    /// Not a TLS probe: why (`prober icmp`).
    Skipped(String),
}

/// A whole migrated file: a header, the modules skipped (with why), and our modules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    /// Comments about the file as a whole (unknown top-level keys, `default_module`).
    pub(crate) notes: Vec<String>,
    /// `name: why` of every module that is not a TLS probe.
    pub(crate) skipped: Vec<String>,
    pub(crate) modules: Vec<Profile>,
}

impl Document {
    /// A document with `notes` and the result of `module` for each of `modules`; the problems
    /// of every module at once when any has one.
    pub(crate) fn of_modules(
        notes: Vec<String>,
        modules: &[(String, Node)],
        module: impl Fn(&str, &Node) -> Result<Migrated, Problem>,
    ) -> Result<Document, Vec<Problem>> {
        let mut doc = Document {
            notes,
            skipped: Vec::new(),
            modules: Vec::new(),
        };
        let mut problems = Vec::new();
        for (name, node) in modules {
            match module(name, node) {
                Ok(Migrated::Profile(p)) => doc.modules.push(*p),
                Ok(Migrated::Skipped(why)) => doc.skipped.push(format!("{name}: {why}")),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            Ok(doc)
        } else {
            Err(problems)
        }
    }

    /// The YAML text: `header` lines first (as comments), then the notes, the skipped modules
    /// and `modules:`.
    pub(crate) fn render(&self, header: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            comment(&mut out, "", line);
        }
        let has_notes = !self.notes.is_empty() || !self.skipped.is_empty();
        if !header.is_empty() && has_notes {
            comment(&mut out, "", "");
        }
        for line in &self.notes {
            comment(&mut out, "", line);
        }
        if !self.skipped.is_empty() {
            comment(&mut out, "", "Not migrated (not TLS probes):");
            for line in &self.skipped {
                comment(&mut out, "", &format!("  {line}"));
            }
        }
        if self.modules.is_empty() {
            out.push_str("modules: {}\n");
            return out;
        }
        out.push_str("modules:\n");
        for module in &self.modules {
            module.render(&mut out);
        }
        out
    }
}

/// `text` as a YAML scalar: plain when it cannot be read as anything but that string, else
/// double-quoted (JSON escaping is valid YAML).
pub(crate) fn scalar(text: &str) -> String {
    const WORDS: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "inf", "nan",
    ];
    let safe_char = |c: char| c.is_ascii_alphanumeric() || "_./:@+-=".contains(c);
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '_')
        && text.chars().all(safe_char)
        && !WORDS.iter().any(|w| text.eq_ignore_ascii_case(w))
        && text.parse::<f64>().is_err()
        && !text.starts_with("0x")
        && !text.starts_with("0o");
    if plain {
        text.to_string()
    } else {
        serde_json::Value::String(text.to_string()).to_string()
    }
}

/// Writes `text` as comment lines with `indent`; line breaks in it become spaces.
fn comment(out: &mut String, indent: &str, text: &str) {
    let text = text.replace(['\r', '\n'], " ");
    if text.is_empty() {
        out.push_str(&format!("{indent}#\n"));
    } else {
        out.push_str(&format!("{indent}# {text}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_read_as_other_types_are_quoted() {
        for text in [
            "true", "No", "null", "200", "1.5", "", "a b", "#x", "*a", "0x1f", "-x",
        ] {
            assert!(scalar(text).starts_with('"'), "{text} should be quoted");
        }
        for text in [
            "5s",
            "ip4",
            "/etc/tls/ca.crt",
            "socks5://localhost:8123",
            "a.b-c",
        ] {
            assert_eq!(scalar(text), text);
        }
    }

    #[test]
    fn quoted_strings_escape_quotes_and_line_breaks() {
        assert_eq!(scalar("a\"b\nc"), "\"a\\\"b\\nc\"");
    }

    #[test]
    fn notes_stand_above_their_setting_and_at_the_top_otherwise() {
        let mut p = Profile::new("smtp", Output::Blackbox);
        p.starttls = Some(StartTls::Smtp);
        p.note("blackbox: prober tcp");
        p.note_on(
            Key::StartTls,
            "blackbox: tcp.query_response → starttls: smtp",
        );
        p.note_on(Key::CaFile, "blackbox: not written, so at the top");
        let doc = Document {
            notes: vec![],
            skipped: vec!["icmp: prober icmp".to_string()],
            modules: vec![p],
        };
        assert_eq!(
            doc.render(&["header".to_string()]),
            "# header\n#\n# Not migrated (not TLS probes):\n#   icmp: prober icmp\nmodules:\n  smtp:\n    \
             # blackbox: prober tcp\n    # blackbox: not written, so at the top\n    \
             # blackbox: tcp.query_response → starttls: smtp\n    starttls: smtp\n    \
             output: blackbox\n"
        );
    }

    #[test]
    fn a_document_without_modules_has_an_empty_mapping() {
        let doc = Document {
            notes: vec![],
            skipped: vec![],
            modules: vec![],
        };
        assert_eq!(doc.render(&[]), "modules: {}\n");
    }
}
