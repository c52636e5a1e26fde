//! Scaling out: shards, target files, on-demand probes.

use std::collections::BTreeSet;

use crate::support::exporter::{free_port, Exporter, Exposition};

/// Target names that have a `tls_probes_total` series.
fn probed_names(m: &Exposition) -> BTreeSet<String> {
    m.0.lines()
        .filter_map(|l| l.strip_prefix("tls_probes_total{target=\""))
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn two_shards_cover_every_target_exactly_once() {
    // Closed ports: the split is about names, not results.
    let port = free_port();
    let names: Vec<String> = (0..24).map(|i| format!("svc-{i}")).collect();
    let mut yaml = "global: {interval: 5s, timeout: 1s}\ntargets:\n".to_string();
    for n in &names {
        yaml.push_str(&format!("  - name: {n}\n    address: 127.0.0.1:{port}\n"));
    }
    let a = Exporter::start_with(Exporter::dir(), &yaml, &["--shard=0/2"]);
    let b = Exporter::start_with(Exporter::dir(), &yaml, &["--shard=1/2"]);
    let (ma, mb) = (probed_names(&a.scrape()), probed_names(&b.scrape()));
    assert!(
        ma.is_disjoint(&mb),
        "both shards probe {:?}",
        ma.intersection(&mb).collect::<Vec<_>>()
    );
    let all: BTreeSet<String> = ma.union(&mb).cloned().collect();
    assert_eq!(all, names.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        !ma.is_empty() && !mb.is_empty(),
        "one shard got nothing: {ma:?} {mb:?}"
    );
    assert_eq!(
        a.scrape().value("tls_exporter_targets"),
        Some(ma.len() as f64)
    );
}

#[test]
fn invalid_shard_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .args(["--shard=2/2", "--config.file=/nonexistent.yml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid shard \\\"2/2\\\""), "{err}");
}
