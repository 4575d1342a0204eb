//! The `boxrun` binary: a thin entry point over [`boxrun::cli`].

fn main() {
    std::process::exit(boxrun::cli::main());
}
