//! libFuzzer's final statistics, as `cargo xtask fuzz` reads them into its
//! table.

#[test]
fn the_figures_come_from_the_stat_lines_and_the_last_coverage_line() {
    let log = "\
INFO: Seed: 1234
#2\tINITED cov: 120 ft: 130 corp: 9/2Kb exec/s: 0 rss: 40Mb
#1024\tNEW    cov: 318 ft: 700 corp: 60/9Kb lim: 4096 exec/s: 512 rss: 44Mb
#620579\tDONE   cov: 321 ft: 712 corp: 633/20Kb lim: 4096 exec/s: 29551 rss: 58Mb
stat::number_of_executed_units: 620579
stat::average_exec_per_sec:     29551
stat::new_units_added:          633
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              58
";
    let stats = xtask::fuzz::stats(log);
    assert_eq!(stats.executions, 620_579);
    assert_eq!(stats.per_second, 29_551);
    assert_eq!(stats.new_inputs, 633);
    assert_eq!(stats.coverage, 321);
    assert_eq!(stats.peak_rss_mb, 58);
}

/// xtask cannot link the fuzz crate (nothing of the workspace is its
/// dependency), so it names the targets itself: the names must be the
/// binaries in `fuzz/src/bin/`.
#[test]
fn every_fuzz_binary_is_a_target() {
    let bins = xtask::project_root().join("fuzz/src/bin");
    let mut found: Vec<String> = std::fs::read_dir(bins)
        .unwrap()
        .map(|entry| entry.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut named: Vec<String> = xtask::fuzz::TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    named.sort();
    assert_eq!(found, named);
}
