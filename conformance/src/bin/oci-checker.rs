//! In-container checker: compare the live environment with config.json, print
//! TAP, exit 1 if any check failed. See boxrun_conformance::checker.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = boxrun_conformance::checker::Options::from_args(&args);
    let tap = boxrun_conformance::checker::run(&opts);
    print!("{}", tap.render());
    let failed = tap.failures().count() > 0;
    std::process::exit(i32::from(failed));
}
