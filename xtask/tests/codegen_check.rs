//! `cargo xtask codegen --check` must catch any change to a contract.

use std::{fs, path::Path};

use xtask::codegen::{FIX_COMMAND, Layout, check};

/// Copies the repository's contracts and committed output into a scratch
/// folder, so each case can change one of them without touching the tree.
fn scratch_copy() -> (tempfile::TempDir, Layout) {
    let real = Layout::of(&xtask::project_root());
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&real.proto_root, &dir.path().join("proto"));
    let layout = Layout::of(dir.path());
    (dir, layout)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn committed_code_matches_the_contracts() {
    check(&Layout::of(&xtask::project_root())).expect("run `cargo xtask codegen` and commit");
}

#[test]
fn an_added_field_is_reported_as_drift_with_the_fix_command() {
    let (_dir, layout) = scratch_copy();
    let proto = layout.proto_root.join("calculator/calculator.proto");
    let text = fs::read_to_string(&proto).unwrap();
    let changed = text.replace("  int64 number = 1;\n", "  int64 number = 1;\n  string note = 2;\n");
    assert_ne!(text, changed, "the test edit must apply");
    fs::write(&proto, changed).unwrap();

    let err = check(&layout).expect_err("drift must fail the check").to_string();
    assert!(err.contains("changed: calculator.rs"), "{err}");
    assert!(err.contains("changed: descriptor.bin"), "{err}");
    assert!(err.contains("note"), "the diff shows the new field: {err}");
    assert!(err.contains(FIX_COMMAND), "{err}");
}

#[test]
fn a_new_contract_is_reported_as_missing_output() {
    let (_dir, layout) = scratch_copy();
    fs::create_dir_all(layout.proto_root.join("extra")).unwrap();
    fs::write(
        layout.proto_root.join("extra/extra.proto"),
        "syntax = \"proto3\";\npackage extra;\nmessage Extra { int32 x = 1; }\n",
    )
    .unwrap();
    let err = check(&layout).expect_err("a new contract must fail the check").to_string();
    assert!(err.contains("missing: extra.rs"), "{err}");
}

#[test]
fn a_deleted_generated_file_is_reported() {
    let (_dir, layout) = scratch_copy();
    fs::remove_file(layout.out_dir.join("streaming.rs")).unwrap();
    let err = check(&layout).expect_err("a missing file must fail the check").to_string();
    assert!(err.contains("missing: streaming.rs"), "{err}");
}

#[test]
fn a_broken_contract_is_a_clear_error() {
    let (_dir, layout) = scratch_copy();
    fs::write(layout.proto_root.join("calculator/calculator.proto"), "syntax = \"proto3\";\nmessage {")
        .unwrap();
    let err = format!("{:#}", check(&layout).expect_err("a syntax error must fail"));
    assert!(err.contains("calculator.proto"), "the error names the file: {err}");
}
