//! The `heformer` command-line tool.

use heformer::Error;

fn main() {
    match heformer::cli::run() {
        Ok(()) => {}
        // The reader went away (`heformer ... | head`): stop quietly.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
