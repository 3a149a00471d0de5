//! Tidy checks of the module boundaries (ARCHITECTURE.md invariant 9): the
//! engine never names a workload, so a user's saga gets the same judging
//! as the bundled hotel checkout.

use std::path::Path;

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("utf-8 source");
                out.push((path.display().to_string(), text));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_engine_names_no_workload() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let hotel = [
        "workloads",
        "\"hold_room\"",
        "\"charge\"",
        "\"authorize\"",
        "\"crm_record\"",
        "\"confirm_room\"",
        "\"capture\"",
        "\"crm_close_won\"",
        "Booking__c",
        "Closed Won",
    ];
    let mut found = Vec::new();
    for part in ["check", "world", "sim"] {
        let files = sources(&root.join(part));
        assert!(!files.is_empty(), "src/{part} has sources");
        for (path, text) in files {
            for needle in hotel {
                if text.contains(needle) {
                    found.push(format!("{path} mentions {needle}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// README's "Use sagasim from your own crate" shows what the example crate
/// (which CI builds and tests) really uses, verbatim: its config, its
/// dependencies, its quick-start test and its CLI binary.
#[test]
fn readme_shows_exactly_what_the_example_crate_uses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = root.join("examples/order-flow");
    for file in [".cargo/config.toml", "tests/quickstart.rs", "src/main.rs"] {
        let text = std::fs::read_to_string(example.join(file)).unwrap();
        assert!(
            readme.contains(&text),
            "README does not show examples/order-flow/{file} verbatim"
        );
    }
    let manifest = std::fs::read_to_string(example.join("Cargo.toml")).unwrap();
    let deps: Vec<&str> = manifest
        .lines()
        .skip_while(|l| *l != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(deps, ["sagasim = { path = \"../..\" }"], "sagasim alone");
    assert!(readme.contains("sagasim = { path = \"../..\" }"));
    assert!(
        readme.contains("unexpected_cfgs = { level = \"warn\", check-cfg = [\"cfg(madsim)\"] }")
    );
}
