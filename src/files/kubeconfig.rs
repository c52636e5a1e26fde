//! Kubeconfig files: the `certificate-authority-data` of each `clusters[].cluster` and the
//! `client-certificate-data` of each `users[].user` (base64 of PEM), or the files their
//! `certificate-authority` / `client-certificate` name (relative to the kubeconfig), in file
//! order: clusters first, then users.
//!
//! Everything else of the kubeconfig (keys, tokens, contexts) is ignored and never kept.

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::{pem, FileError, CERT_FILE_LIMIT};
use crate::config::read;

/// The DER of every certificate the kubeconfig holds or names, at most `limit` + 1.
pub(crate) fn certificates(
    path: &Path,
    bytes: &[u8],
    limit: usize,
) -> Result<Vec<Vec<u8>>, FileError> {
    let bad = |detail: String| FileError::Kubeconfig {
        path: path.to_path_buf(),
        detail,
    };
    let config: Kubeconfig = serde_saphyr::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let clusters = config.clusters.iter().enumerate().filter_map(|(i, c)| {
        let c = c.cluster.as_ref()?;
        Some((
            format!("clusters[{i}].cluster"),
            "certificate-authority",
            c.ca_data.as_ref(),
            c.ca.as_ref(),
        ))
    });
    let users = config.users.iter().enumerate().filter_map(|(i, u)| {
        let u = u.user.as_ref()?;
        Some((
            format!("users[{i}].user"),
            "client-certificate",
            u.cert_data.as_ref(),
            u.cert.as_ref(),
        ))
    });
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (at, name, data, file) in clusters.chain(users) {
        let pem_bytes = match (data, file) {
            (Some(data), _) => {
                let cleaned: String = data.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(cleaned.as_bytes())
                    .map_err(|e| bad(format!("{at}.{name}-data is not valid base64 ({e})")))?
            }
            (None, Some(file)) => {
                let referenced = dir.join(file);
                read::read_bounded(&referenced, CERT_FILE_LIMIT).map_err(|e| {
                    FileError::Reference {
                        path: path.to_path_buf(),
                        field: format!("{at}.{name}"),
                        detail: e.to_string(),
                    }
                })?
            }
            (None, None) => continue,
        };
        let left = limit.saturating_add(1).saturating_sub(out.len());
        let found = pem::certificates(path, &pem_bytes, left).map_err(|e| match e {
            FileError::Pem { detail, .. } => bad(format!("{at}.{name}: invalid PEM: {detail}")),
            other => other,
        })?;
        out.extend(found);
        if out.len() > limit {
            break;
        }
    }
    Ok(out)
}

/// The parts of a kubeconfig that hold certificates; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    cluster: Option<Cluster>,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-certificate")]
    cert: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::tests::pem_of;
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn embedded_and_referenced_certificates_are_found_clusters_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca2.pem"), pem_of("ca2")).expect("write");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: {}\n- name: b\n  cluster:\n    certificate-authority: ca2.pem\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: AAAA\n- name: token\n  user: {{token: abc}}\n",
            b64(&pem_of("ca1")),
            b64(&pem_of("user"))
        );
        let path = dir.path().join("kubeconfig");
        let found = certificates(&path, yaml.as_bytes(), 10).expect("valid kubeconfig");
        let cns: Vec<String> = found
            .iter()
            .map(|d| crate::tls::cert::parse(d).expect("certificate").cn)
            .collect();
        assert_eq!(cns, ["ca1", "ca2", "user"]);
    }

    #[test]
    fn bad_base64_and_missing_references_are_sentences() {
        let path = Path::new("/k/config");
        let yaml = "clusters:\n- cluster:\n    certificate-authority-data: '%%%'\n";
        let e = certificates(path, yaml.as_bytes(), 10).expect_err("bad base64");
        assert!(
            e.to_string().starts_with("/k/config is not a valid kubeconfig: clusters[0].cluster.certificate-authority-data is not valid base64"),
            "{e}"
        );
        let yaml = "users:\n- user:\n    client-certificate: /nonexistent/c.pem\n";
        let e = certificates(path, yaml.as_bytes(), 10).expect_err("missing file");
        assert!(
            e.to_string().starts_with(
                "users[0].user.client-certificate of /k/config: cannot read /nonexistent/c.pem"
            ),
            "{e}"
        );
    }

    #[test]
    fn yaml_that_is_not_a_kubeconfig_is_refused() {
        let e = certificates(Path::new("k"), b"clusters: 3\n", 10).expect_err("not a kubeconfig");
        assert!(
            e.to_string().starts_with("k is not a valid kubeconfig: "),
            "{e}"
        );
    }
}
