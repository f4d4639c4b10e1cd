//! A command xtask runs that fails has already said why: xtask exits with
//! its status, so `cargo xtask conformance` exits 1 for a failed case and 2
//! for a run that could not start, as the suite itself does.

use std::process::Command;

use xtask::Failed;

fn status_of(script: &str) -> std::process::ExitStatus {
    Command::new("sh").args(["-c", script]).status().unwrap()
}

#[test]
fn a_failed_command_keeps_its_exit_status() {
    assert_eq!(Failed::from(status_of("exit 1")), Failed(1));
    assert_eq!(Failed::from(status_of("exit 2")), Failed(2));
    assert_eq!(Failed::from(status_of("exit 130")), Failed(130));
}

#[test]
fn a_command_killed_by_a_signal_is_a_plain_failure() {
    assert_eq!(Failed::from(status_of("kill -9 $$")), Failed(1));
}
