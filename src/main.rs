//! The `heformer` command-line tool.

fn main() {
    if let Err(e) = heformer::cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
