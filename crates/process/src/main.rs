//! `process_argus`: the server side of argus-webjob. See SPEC §4 and §7, and the library.

fn main() -> std::process::ExitCode {
    process_argus::main()
}
