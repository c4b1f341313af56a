//! The benchmark binary as users start it: it parses its command line and lists every
//! benchmark. (Being an integration test also makes `cargo test --workspace` build the binary
//! itself, so the test command's clippy pass covers it as `cargo clippy --all-targets` does.)

use std::process::Command;

#[test]
fn help_lists_every_benchmark() {
    let out = Command::new(env!("CARGO_BIN_EXE_pek-bench"))
        .arg("--help")
        .output()
        .expect("running pek-bench --help");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "group-search",
        "fan-out",
        "forward",
        "point-history",
        "web",
        "federated-points",
        "pek-next",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    // The internal `local` helper stays out of the listing.
    assert!(!help.contains("\n  local"), "{help}");
}

#[test]
fn an_unknown_benchmark_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_pek-bench"))
        .arg("no-such-benchmark")
        .output()
        .expect("running pek-bench");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
