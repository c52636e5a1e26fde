//! Modules (`modules:`, `module: NAME`, `/probe?module=`), their `output:`, and the
//! `adhoc_probes:` rules, against real rustls servers on loopback.

use std::future::Future;
use std::net::SocketAddr;

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::pki::{pem_chain, Ca, Cert, Spec};
use crate::support::servers::{self, Opts, Server};
use crate::support::WAIT;

/// A private root and a `localhost` leaf it issued: trusted only with the root as `ca_file`.
struct Lab {
    root: Ca,
    leaf: Cert,
}

impl Lab {
    fn new() -> Lab {
        let root = Ca::root("Modules Root");
        let leaf = root.leaf(&Spec::leaf("localhost"));
        Lab { root, leaf }
    }

    /// A temp dir holding the root as `ca.pem`.
    fn dir(&self) -> tempfile::TempDir {
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", &pem_chain(&[&self.root.cert]));
        dir
    }

    async fn serve_on(&self, bind: SocketAddr) -> Server {
        let mut opts = Opts::new(vec![self.leaf.der.clone()], self.leaf.key_der());
        opts.bind = bind;
        servers::rustls(opts).await
    }

    async fn serve(&self) -> Server {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }
}

/// Every test is bounded: a hung exporter or server fails the test instead of the suite.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(WAIT * 3, test)
        .await
        .expect("test finished in time");
}

/// `GET /probe?query`, expecting 200.
fn probe(e: &Exporter, query: &str) -> Exposition {
    let (status, body) = e.get(&format!("/probe?{query}")).expect("probe");
    assert_eq!(status, 200, "{query}: {body}");
    Exposition(body)
}

const LAB_MODULE: &str =
    "  lab:\n    ca_file: ca.pem\n    server_name: localhost\n    timeout: 3s\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_ca_file_makes_the_targets_naming_it_trust_their_server() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve().await;
        let port = server.addr.port();
        let dir = lab.dir();
        // A target file in a directory of its own: the module's ca_file stays relative to the
        // config file.
        std::fs::create_dir(dir.path().join("t")).expect("mkdir");
        write(
            &dir.path().join("t"),
            "a.yml",
            &format!("- {{name: from_file, address: \"127.0.0.1:{port}\", module: lab}}\n"),
        );
        let yaml = format!(
            "global: {{interval: 1h, scan: false}}\nmodules:\n{LAB_MODULE}targets:\n  - {{name: with, address: \"127.0.0.1:{port}\", module: lab}}\n  - {{name: without, address: \"127.0.0.1:{port}\", server_name: localhost}}\ntarget_files: [t/*.yml]\n"
        );
        let e = Exporter::start(dir, &yaml);
        for t in ["with", "without", "from_file"] {
            e.wait_probes(t, 1);
        }
        e.scrape().assert_lines(&[
            "tls_probe_success{target=\"with\"} 1".to_string(),
            "tls_probe_success{target=\"from_file\"} 1".to_string(),
            "tls_probe_success{target=\"without\"} 0".to_string(),
        ]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_with_a_module_uses_its_settings_and_its_output() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve().await;
        let port = server.addr.port();
        let yaml = format!(
            "global: {{interval: 1h, scan: false}}\nmodules:\n{LAB_MODULE}  bb:\n    ca_file: ca.pem\n    server_name: localhost\n    output: blackbox\ntargets:\n  - {{name: t, address: \"localhost:{port}\"}}\n"
        );
        let e = Exporter::start_with(lab.dir(), &yaml, &["--web.enable-adhoc-probes"]);
        let adhoc = format!("127.0.0.1:{port}");
        // Global settings only: the private root is not trusted.
        probe(&e, &format!("target={adhoc}&server_name=localhost"))
            .assert_lines(&[format!("tls_probe_success{{target=\"{adhoc}\"}} 0")]);
        probe(&e, &format!("target={adhoc}&module=lab"))
            .assert_lines(&[format!("tls_probe_success{{target=\"{adhoc}\"}} 1")]);
        // A URL target takes the module's settings too.
        let url = format!("smtps://127.0.0.1:{port}");
        probe(&e, &format!("target={url}&module=lab"))
            .assert_lines(&[format!("tls_probe_success{{target=\"{url}\"}} 1")]);
        // The module's output picks the format; &format= wins over it.
        let bb = probe(&e, &format!("target={adhoc}&module=bb"));
        bb.assert_lines(&["probe_success 1".to_string()]);
        bb.assert_absent(&["tls_probe_success".to_string()]);
        probe(&e, &format!("target={adhoc}&module=bb&format=tls_exporter"))
            .assert_lines(&[format!("tls_probe_success{{target=\"{adhoc}\"}} 1")]);
        // A configured target named with a module is probed with the module's settings.
        probe(&e, "target=t").assert_lines(&["tls_probe_success{target=\"t\"} 0".to_string()]);
        probe(&e, "target=t&module=lab")
            .assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
        let (status, body) = e.get("/probe?target=t&module=nope").expect("probe");
        assert_eq!(status, 400, "{body}");
        assert_eq!(body, "unknown module \"nope\"; expected one of bb, lab\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adhoc_rules_refuse_hosts_addresses_and_ports_and_allow_a_listed_one() {
    bounded(async {
        let lab = Lab::new();
        // On 127.0.0.2, so that `localhost` (127.0.0.1) is a name resolving outside the rules.
        let server = lab.serve_on(SocketAddr::from(([127, 0, 0, 2], 0))).await;
        let port = server.addr.port();
        let yaml = format!(
            "global: {{interval: 1h, scan: false}}\nmodules:\n{LAB_MODULE}adhoc_probes:\n  modules: [lab]\n  hosts: [\"127.0.0.*\", localhost]\n  cidrs: [127.0.0.2/32]\n  ports: [{port}]\ntargets: []\n"
        );
        let e = Exporter::start_with(lab.dir(), &yaml, &["--web.enable-adhoc-probes"]);
        let allowed = format!("127.0.0.2:{port}");
        probe(&e, &format!("target={allowed}&module=lab"))
            .assert_lines(&[format!("tls_probe_success{{target=\"{allowed}\"}} 1")]);
        probe(&e, &format!("target={allowed}&module=lab&format=blackbox"))
            .assert_lines(&["probe_success 1".to_string()]);
        for (query, says) in [
            (
                format!("target=localhost:{port}&module=lab"),
                "\"localhost\" resolves to 127.0.0.1, which is not allowed for ad-hoc probes (it is in none of adhoc_probes.cidrs)".to_string(),
            ),
            (
                format!("target=127.0.0.3:{port}&module=lab"),
                "127.0.0.3, which is not allowed for ad-hoc probes (it is in none of adhoc_probes.cidrs)".to_string(),
            ),
            (
                format!("target=www.example.com:{port}&module=lab"),
                "host \"www.example.com\" is not allowed for ad-hoc probes (it matches none of adhoc_probes.hosts)".to_string(),
            ),
            (
                "target=127.0.0.2:1&module=lab".to_string(),
                "port 1 is not allowed for ad-hoc probes (adhoc_probes.ports)".to_string(),
            ),
            (
                format!("target={allowed}"),
                "ad-hoc probes must name a module (&module=), one of lab".to_string(),
            ),
        ] {
            let (status, body) = e.get(&format!("/probe?{query}")).expect("probe");
            assert_eq!((status, body), (403, format!("{says}\n")), "{query}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_of_a_changed_module_restarts_only_its_targets() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve().await;
        let port = server.addr.port();
        let config = |timeout: &str| {
            format!(
                "global: {{interval: 1h, scan: false, ca_file: ca.pem}}\nmodules:\n  m1: {{timeout: {timeout}, server_name: localhost}}\n  m2: {{timeout: 5s, server_name: localhost}}\ntargets:\n  - {{name: a, address: \"127.0.0.1:{port}\", module: m1}}\n  - {{name: b, address: \"127.0.0.1:{port}\", module: m2}}\n  - {{name: c, address: \"127.0.0.1:{port}\", server_name: localhost}}\n"
            )
        };
        let e = Exporter::start_with(lab.dir(), &config("5s"), &["--web.enable-lifecycle"]);
        for t in ["a", "b", "c"] {
            e.wait_probes(t, 1);
        }
        std::fs::write(&e.config, config("4s")).expect("rewrite config");
        let (status, body) = e.post("/-/reload").expect("reload");
        assert_eq!(status, 200, "{body}");
        // a restarted (probed again at once); the hourly b and c were left alone.
        e.wait_probes("a", 2).assert_lines(&[
            "tls_probes_total{target=\"b\"} 1".to_string(),
            "tls_probes_total{target=\"c\"} 1".to_string(),
            "tls_probe_success{target=\"a\"} 1".to_string(),
        ]);
    })
    .await;
}
