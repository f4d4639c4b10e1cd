//! The CI files' lint must catch a fault in each kind of file it checks:
//! a copy of the repository's files passes, and one planted fault in any of
//! them fails the check, naming the linter that found it.

use std::{fs, path::Path};

use xtask::ci_files::check_tree;

/// What `check_tree` reads, copied out of the repository.
const FILES: &[&str] =
    &[".github", "docker-compose.yml", "Dockerfile", ".dockerignore", "conformance/peers/python/Dockerfile"];

fn scratch_copy() -> tempfile::TempDir {
    let root = xtask::project_root();
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        copy(&root.join(file), &dir.path().join(file));
    }
    dir
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    if from.is_dir() {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            copy(&path, &to.join(path.file_name().unwrap()));
        }
    } else {
        fs::copy(from, to).unwrap();
    }
}

/// Replaces the first `from` in the scratch copy's `file` with `to`.
fn plant(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer holds {from:?}: plant the fault elsewhere");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn fails_naming(dir: &Path, linter: &str) {
    let err = check_tree(dir).expect_err("a planted fault passed the check");
    let text = format!("{err:#}");
    assert!(text.contains(linter), "{text}");
}

#[test]
#[ignore = "installs the linters into tools/venv: run through `cargo xtask test`"]
fn the_repositorys_ci_files_pass() {
    let dir = scratch_copy();
    check_tree(dir.path()).unwrap();
}

#[test]
#[ignore = "installs the linters into tools/venv: run through `cargo xtask test`"]
fn an_unquoted_variable_in_a_workflow_script_fails() {
    let dir = scratch_copy();
    fs::write(
        dir.path().join(".github/workflows/planted.yml"),
        "on: push\njobs:\n  copy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cp $REPORT out\n",
    )
    .unwrap();
    fails_naming(dir.path(), "actionlint");
}

#[test]
#[ignore = "installs the linters into tools/venv: run through `cargo xtask test`"]
fn an_action_step_reading_an_input_it_does_not_declare_fails() {
    let dir = scratch_copy();
    plant(dir.path(), ".github/actions/conformance/action.yml", "${{ inputs.", "${{ inputs.no-such-input-");
    fails_naming(dir.path(), "actionlint");
}

#[test]
#[ignore = "installs the linters into tools/venv: run through `cargo xtask test`"]
fn a_compose_service_with_an_unknown_key_fails() {
    let dir = scratch_copy();
    plant(dir.path(), "docker-compose.yml", "\n  minio:\n", "\n  minio:\n    colour: blue\n");
    fails_naming(dir.path(), "docker-compose config");
}

#[test]
#[ignore = "installs the linters into tools/venv: run through `cargo xtask test`"]
fn a_dockerfile_that_runs_sudo_fails() {
    let dir = scratch_copy();
    let path = dir.path().join("Dockerfile");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}RUN sudo true\n")).unwrap();
    fails_naming(dir.path(), "hadolint");
}
