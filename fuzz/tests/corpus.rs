//! Every committed seed and every regression, replayed through its target
//! without libFuzzer: a crash the fuzzer once found stays fixed.

use std::path::PathBuf;

#[test]
fn every_seed_and_regression_passes_its_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, target) in fuzz::TARGETS {
        let mut seeds = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} fails on {}", path.display());
                seeds += 1;
            }
        }
        assert!(seeds > 0, "{name} has no seeds in fuzz/corpus/{name}");
        replayed += seeds;
    }
    assert!(replayed >= fuzz::TARGETS.len());
}
