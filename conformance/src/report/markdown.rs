//! The run as Markdown, for a CI job's summary page
//! (`$GITHUB_STEP_SUMMARY`) and pull-request comments: the counts first,
//! then every failure with its evidence, folded so a long report stays
//! readable.

use std::{collections::BTreeMap, fmt::Write as _};

use super::{CaseResult, Summary, Verdict};

/// The whole report for a run against `target` with root seed `seed`.
pub fn render(target: &str, seed: u64, results: &[CaseResult]) -> String {
    let summary = Summary::of(results);
    let mut out = String::new();
    let mark = if summary.failed == 0 { "✅" } else { "❌" };
    let _ = writeln!(out, "## {mark} Conformance of `{}`\n", code(target));
    let _ = writeln!(out, "{summary}, root seed `{seed}`.\n");

    let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for result in results {
        suites.entry(&result.suite).or_default().push(result);
    }
    out.push_str("| suite | passed | failed | skipped |\n| --- | ---: | ---: | ---: |\n");
    for (suite, results) in &suites {
        let counts = Summary::of(results.iter().copied());
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            cell(suite),
            counts.passed,
            counts.failed,
            counts.skipped
        );
    }

    let failed: Vec<&CaseResult> = results.iter().filter(|r| counts_as_failed(r)).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\n### Failed\n");
        for result in failed {
            failure(&mut out, result);
        }
    }
    let known: Vec<&CaseResult> =
        results.iter().filter(|r| r.known_failing && matches!(r.verdict, Verdict::Failed(_))).collect();
    if !known.is_empty() {
        let _ = writeln!(out, "\n### Known failing, and still failing\n");
        for result in known {
            let _ = writeln!(out, "- `{}`", code(&result.name));
        }
    }
    let skipped: Vec<(&CaseResult, &str)> = results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Skipped { reason } => Some((r, reason.as_str())),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "\n<details><summary>{} skipped</summary>\n", skipped.len());
        for (result, reason) in skipped {
            let _ = writeln!(out, "- `{}`: {}", code(&result.name), html(reason));
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// Whether the case makes the run fail (a failure not on the known-failing
/// list, or a pass that is on it): [`Summary::of`]'s rule, not a copy of it.
fn counts_as_failed(result: &CaseResult) -> bool {
    Summary::of(std::iter::once(result)).failed == 1
}

fn failure(out: &mut String, result: &CaseResult) {
    let Some(failure) = result.verdict.failure() else {
        let _ = writeln!(out, "- `{}`: passed, but it is listed as known-failing", code(&result.name));
        return;
    };
    let _ = writeln!(out, "<details><summary><code>{}</code></summary>\n", html(&result.name));
    let _ = writeln!(out, "- expected: {}", html(&failure.expected));
    let _ = writeln!(out, "- actual: {}", html(&failure.actual));
    if let Some(note) = &failure.note {
        let _ = writeln!(out, "- note: {}", html(note));
    }
    if let Some(input) = &failure.input {
        let _ = writeln!(out, "\nInput (shrunk):\n\n{}", fenced(input, "text"));
    }
    if let Some(command) = &failure.reproduce {
        let _ = writeln!(out, "\nReproduce:\n\n{}", fenced(command, "sh"));
    }
    out.push_str("\n</details>\n\n");
}

/// Text inside backticks: a backtick in it would end the span early.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

/// A table cell: a pipe would start a new one.
fn cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// Prose from a target's answer, which may hold anything, including markup
/// that would break out of the report's own (`</details>`, a table row).
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "&#124;")
        .replace('\n', "<br>")
}

/// A fenced block that `text` cannot close: its fence is longer than any
/// run of backticks inside.
fn fenced(text: &str, language: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}", text.trim_end())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Failure;

    fn case(name: &str, verdict: Verdict, known_failing: bool) -> CaseResult {
        CaseResult {
            name: name.to_owned(),
            suite: name.split('/').next().unwrap().to_owned(),
            verdict,
            duration: Duration::from_millis(5),
            known_failing,
        }
    }

    #[test]
    fn counts_each_suite_and_folds_each_failure_with_its_evidence() {
        let mut failure = Failure::new("OK with the cube", "INTERNAL: boom");
        failure.input = Some("value: 3".to_owned());
        failure.reproduce = Some("conformance --seed 7 --run 'declared/x'".to_owned());
        let results = [
            case("declared/a", Verdict::Passed, false),
            case("declared/b", Verdict::Failed(failure), false),
            case("generic/c", Verdict::Skipped { reason: "not served".to_owned() }, false),
            case("generic/d", Verdict::failed("x", "y"), true),
        ];
        let text = render("http://127.0.0.1:1", 7, &results);
        assert!(text.starts_with("## ❌ Conformance of `http://127.0.0.1:1`"), "{text}");
        assert!(text.contains("1 passed, 1 failed, 1 skipped, root seed `7`"), "{text}");
        assert!(text.contains("| `declared` | 1 | 1 | 0 |"), "{text}");
        assert!(text.contains("| `generic` | 0 | 0 | 1 |"), "{text}");
        assert!(text.contains("<summary><code>declared/b</code></summary>"), "{text}");
        assert!(text.contains("- actual: INTERNAL: boom"), "{text}");
        assert!(text.contains("```text\nvalue: 3\n```"), "{text}");
        assert!(text.contains("```sh\nconformance --seed 7 --run 'declared/x'\n```"), "{text}");
        assert!(text.contains("### Known failing, and still failing\n\n- `generic/d`"), "{text}");
        assert!(text.contains("- `generic/c`: not served"), "{text}");
    }

    #[test]
    fn a_clean_run_has_no_failure_section() {
        let text = render("t", 1, &[case("declared/a", Verdict::Passed, false)]);
        assert!(text.starts_with("## ✅"), "{text}");
        assert!(!text.contains("### Failed"), "{text}");
    }

    #[test]
    fn a_pass_on_the_known_failing_list_is_reported_as_a_failure() {
        let text = render("t", 1, &[case("declared/a", Verdict::Passed, true)]);
        assert!(
            text.contains("### Failed\n\n- `declared/a`: passed, but it is listed as known-failing"),
            "{text}"
        );
    }

    #[test]
    fn what_a_server_says_cannot_break_out_of_the_report() {
        let mut failure = Failure::new("OK", "</details>\n| evil | row |");
        failure.input = Some("bytes: \"```\"".to_owned());
        let text = render("t", 1, &[case("declared/a", Verdict::Failed(failure), false)]);
        assert!(text.contains("- actual: &lt;/details&gt;<br>&#124; evil &#124; row &#124;"), "{text}");
        assert!(text.contains("````text\nbytes: \"```\"\n````"), "{text}");
        assert_eq!(text.matches("</details>").count(), 1, "{text}");
    }
}
