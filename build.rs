//! Embeds the git revision and rustc version for `tls_exporter_build_info` and `--version`.

use std::process::Command;

fn main() {
    let revision = std::env::var("TLS_EXPORTER_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    println!(
        "cargo:rustc-env=TLS_EXPORTER_REVISION={}",
        revision
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    );
    println!(
        "cargo:rustc-env=TLS_EXPORTER_RUSTC_VERSION={}",
        rustc_version.unwrap_or_else(|| "unknown".to_string())
    );
    println!("cargo:rerun-if-env-changed=TLS_EXPORTER_REVISION");
    // HEAD names the branch; the branch's ref (loose or packed) moves with each commit.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=.git/packed-refs");
}
