//! Static checks of the CI files users copy: the GitHub workflows, the
//! composite actions, `docker-compose.yml` and the Dockerfiles. None of them
//! can run on a machine without a Docker engine or GitHub, so they are
//! linted: actionlint (with shellcheck on every `run:` script), the Compose
//! file through `docker-compose config`, and the Dockerfiles through
//! hadolint. `docs/ci.md` says what that proves and what it leaves unproven.
//!
//! actionlint reads workflows only. A composite action's steps are checked
//! by wrapping them in a workflow of their own, whose `workflow_call` inputs
//! are the action's inputs, so that `inputs.*` references, expressions and
//! scripts get the same checks as a workflow's; findings are reported at the
//! action's own lines. Its metadata and the inputs a workflow passes it are
//! checked where a workflow uses it (`uses: ./.github/actions/...`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    project_root, step,
    tools::{self, Requirements},
};

/// Where the workflows live, relative to the repository root.
const WORKFLOWS: &str = ".github/workflows";
/// Where the composite actions live, one folder each.
const ACTIONS: &str = ".github/actions";
/// actionlint's settings: the self-hosted runner labels the workflows use.
const ACTIONLINT_CONFIG: &str = ".github/actionlint.yaml";
/// The Compose file.
const COMPOSE: &str = "docker-compose.yml";
/// Every Dockerfile.
const DOCKERFILES: &[&str] = &["Dockerfile", "conformance/peers/python/Dockerfile"];

/// Lints every workflow, composite action, Compose file and Dockerfile,
/// installing the pinned linters (`tools/ci-requirements.txt`) into
/// `tools/venv` on first use. Every linter runs even when an earlier one
/// failed, so one run reports everything.
pub fn check() -> Result<()> {
    check_tree(&project_root())
}

/// [`check`] on the CI files of the tree at `root`, which holds them where
/// this repository does.
pub fn check_tree(root: &Path) -> Result<()> {
    let python = tools::ensure_venv(&[Requirements::CiFiles])?;
    let bin = python.parent().context("the venv's python has no folder")?.to_path_buf();
    let mut failed = Vec::new();

    step("actionlint: workflows, and each composite action's steps (shellcheck on every run: script)");
    if let Err(err) = actionlint(root, &bin) {
        eprintln!("{err:#}");
        failed.push("actionlint");
    }
    step(&format!("docker-compose config: {COMPOSE}"));
    if let Err(err) = compose(root) {
        eprintln!("{err:#}");
        failed.push("docker-compose config");
    }
    step(&format!("hadolint: {}", DOCKERFILES.join(", ")));
    if let Err(err) = hadolint(root, &bin) {
        eprintln!("{err:#}");
        failed.push("hadolint");
    }
    if !failed.is_empty() {
        bail!("the CI files fail {} (the findings are above)", failed.join(", "));
    }
    Ok(())
}

/// actionlint, told where the pinned shellcheck is; Python scripts are not
/// checked (none of ours is one), so a pyflakes that happens to be on the
/// PATH cannot change the verdict.
fn actionlint_command(root: &Path, bin: &Path) -> Command {
    let mut command = Command::new(bin.join("actionlint"));
    command
        .arg("-config-file")
        .arg(root.join(ACTIONLINT_CONFIG))
        .arg("-shellcheck")
        .arg(bin.join("shellcheck"))
        .arg("-pyflakes=")
        .current_dir(root);
    command
}

fn actionlint(root: &Path, bin: &Path) -> Result<()> {
    let workflows = files_in(&root.join(WORKFLOWS), |path| has_extension(path, &["yml", "yaml"]))?;
    if workflows.is_empty() {
        bail!("no workflow under {WORKFLOWS}");
    }
    let mut clean = true;
    let status = actionlint_command(root, bin).args(&workflows).status().context("running actionlint")?;
    clean &= status.success();

    let scratch = tempfile::tempdir()?;
    for folder in files_in(&root.join(ACTIONS), |path| path.is_dir())? {
        let Some(metadata) =
            ["action.yml", "action.yaml"].map(|name| folder.join(name)).into_iter().find(|p| p.is_file())
        else {
            continue;
        };
        let shown = metadata.strip_prefix(root).unwrap_or(&metadata).display().to_string();
        let text = std::fs::read_to_string(&metadata).with_context(|| format!("reading {shown}"))?;
        let Some(wrapped) = composite_as_workflow(&text).with_context(|| format!("reading {shown}"))? else {
            continue; // A JavaScript or Docker action has no steps to check.
        };
        let workflow = scratch.path().join("composite.yml");
        std::fs::write(&workflow, &wrapped.text)?;
        let output = actionlint_command(root, bin)
            .args(["-format", FINDING_FORMAT])
            .arg(&workflow)
            .output()
            .context("running actionlint")?;
        let findings = String::from_utf8_lossy(&output.stdout);
        for finding in findings.lines().filter(|line| !line.is_empty()) {
            println!("{}", wrapped.locate(&shown, finding));
        }
        if !output.status.success() {
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            clean = false;
        }
    }
    if !clean {
        bail!("actionlint found problems");
    }
    Ok(())
}

/// One finding a line: line, column and message, tab-separated.
const FINDING_FORMAT: &str =
    "{{range $e := .}}{{$e.Line}}\t{{$e.Column}}\t{{$e.Message}} [{{$e.Kind}}]\n{{end}}";

/// A composite action's steps as a workflow, and how to find a line of it in
/// the action.
#[derive(Debug, PartialEq, Eq)]
struct Wrapped {
    text: String,
    /// Added to a workflow line number to give the action's.
    line_offset: i64,
}

/// How many columns the steps move right in the workflow.
const INDENT: &str = "  ";

impl Wrapped {
    /// A finding (`LINE\tCOL\tMESSAGE`) at the action's own line and column.
    fn locate(&self, path: &str, finding: &str) -> String {
        let mut fields = finding.splitn(3, '\t');
        match (fields.next().map(str::parse::<i64>), fields.next().map(str::parse::<i64>), fields.next()) {
            (Some(Ok(line)), Some(Ok(column)), Some(message)) => {
                let column = (column - INDENT.len() as i64).max(1);
                format!("{path}:{}:{column}: {message}", line + self.line_offset)
            }
            _ => format!("{path}: {finding}"),
        }
    }
}

/// Wraps the steps of a composite action's metadata in a workflow whose
/// `workflow_call` inputs are the action's inputs; `None` for an action
/// that is not composite. Reads the layout our actions use (top-level
/// `inputs:` and `runs:` keys, two spaces a level) rather than all of YAML,
/// and says so when a file strays from it.
fn composite_as_workflow(action: &str) -> Result<Option<Wrapped>> {
    let lines: Vec<&str> = action.lines().collect();
    let top_level = |line: &str| !line.is_empty() && !line.starts_with([' ', '#']);
    let section = |key: &str| -> Option<(usize, usize)> {
        let start = lines.iter().position(|line| line.trim_end() == key)?;
        let end =
            lines[start + 1..].iter().position(|line| top_level(line)).map_or(lines.len(), |n| start + 1 + n);
        Some((start + 1, end))
    };
    let Some((runs, runs_end)) = section("runs:") else { bail!("no top-level `runs:` key") };
    if !lines[runs..runs_end].iter().any(|line| line.trim() == "using: composite") {
        return Ok(None);
    }
    let steps = lines[runs..runs_end]
        .iter()
        .position(|line| line.trim_end() == "  steps:")
        .map(|n| runs + n + 1)
        .context("a composite action without `  steps:` under `runs:`")?;
    let inputs: Vec<&str> = match section("inputs:") {
        Some((start, end)) => lines[start..end]
            .iter()
            .filter_map(|line| line.strip_prefix("  ")?.strip_suffix(':'))
            .filter(|name| !name.starts_with([' ', '#']) && !name.contains(' '))
            .collect(),
        None => Vec::new(),
    };

    let mut text = String::from("on:\n  workflow_call:\n");
    if !inputs.is_empty() {
        text += "    inputs:\n";
        for name in &inputs {
            text += &format!("      {name}:\n        type: string\n        required: false\n");
        }
    }
    text += "jobs:\n  composite:\n    runs-on: ubuntu-latest\n    steps:\n";
    let first_step_line = text.lines().count() as i64 + 1;
    for line in &lines[steps..runs_end] {
        if !line.trim().is_empty() {
            text += INDENT;
        }
        text += line;
        text += "\n";
    }
    Ok(Some(Wrapped { text, line_offset: steps as i64 + 1 - first_step_line }))
}

/// `docker-compose config -q`: the file parses, follows the Compose schema,
/// and every variable has a default. It needs no Docker daemon. Falls back
/// to Compose v2 (`docker compose`) where only that is installed.
fn compose(root: &Path) -> Result<()> {
    let mut command = if Command::new("docker-compose").arg("version").output().is_ok() {
        Command::new("docker-compose")
    } else if Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|out| out.status.success())
    {
        let mut command = Command::new("docker");
        command.arg("compose");
        command
    } else {
        bail!(
            "docker-compose is not installed: on Debian or Ubuntu, `apt-get install docker-compose` \
             (it validates {COMPOSE} without a Docker daemon)"
        );
    };
    let status = command
        .args(["-f", COMPOSE, "config", "-q"])
        .current_dir(root)
        .status()
        .context("running docker-compose")?;
    if !status.success() {
        bail!("`docker-compose -f {COMPOSE} config -q` rejects the file");
    }
    Ok(())
}

/// hadolint on every Dockerfile, failing on any finding: a rule that does
/// not fit is turned off in the Dockerfile itself, with the reason beside it.
fn hadolint(root: &Path, bin: &Path) -> Result<()> {
    let status = Command::new(bin.join("hadolint"))
        .args(DOCKERFILES)
        .current_dir(root)
        .status()
        .context("running hadolint")?;
    if !status.success() {
        bail!("hadolint found problems");
    }
    Ok(())
}

/// The entries of `folder` that `keep` accepts, sorted; none when the folder
/// does not exist.
fn files_in(folder: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", folder.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if keep(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension().and_then(|ext| ext.to_str()).is_some_and(|ext| extensions.contains(&ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTION: &str = "\
name: demo
description: a composite action
inputs:
  target:
    description: where
    default: ''
  extra-args:
    description: more
runs:
  using: composite
  steps:
    - name: say
      shell: bash
      run: |
        echo \"${{ inputs.target }}\"
";

    #[test]
    fn inputs_become_workflow_call_inputs_and_steps_keep_their_shape() {
        let wrapped = composite_as_workflow(ACTION).unwrap().unwrap();
        let expected = "\
on:
  workflow_call:
    inputs:
      target:
        type: string
        required: false
      extra-args:
        type: string
        required: false
jobs:
  composite:
    runs-on: ubuntu-latest
    steps:
      - name: say
        shell: bash
        run: |
          echo \"${{ inputs.target }}\"
";
        assert_eq!(wrapped.text, expected);
    }

    #[test]
    fn findings_point_at_the_actions_own_lines() {
        let wrapped = composite_as_workflow(ACTION).unwrap().unwrap();
        // `echo` is line 17 of the workflow and line 15 of the action.
        assert_eq!(wrapped.text.lines().nth(16).unwrap().trim(), "echo \"${{ inputs.target }}\"");
        assert_eq!(
            wrapped.locate("action.yml", "17\t11\tsomething is wrong [shellcheck]"),
            "action.yml:15:9: something is wrong [shellcheck]"
        );
        assert_eq!(ACTION.lines().nth(14).unwrap().trim(), "echo \"${{ inputs.target }}\"");
    }

    #[test]
    fn other_kinds_of_action_are_left_alone() {
        let node = "name: n\ndescription: d\nruns:\n  using: node24\n  main: index.js\n";
        assert_eq!(composite_as_workflow(node).unwrap(), None);
        assert!(composite_as_workflow("name: n\n").is_err());
    }
}
