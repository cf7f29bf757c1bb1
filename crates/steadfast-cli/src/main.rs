//! `steadfast`: see and operate the workflows of a running steadfast
//! application through its admin endpoint. `steadfast --help` lists the
//! commands; the library ([`steadfast_cli`]) documents the exit codes.

fn main() -> std::process::ExitCode {
    steadfast_cli::main(std::env::args_os())
}
