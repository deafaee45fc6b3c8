//! `process_argus` for the end-to-end tests: the program itself, built as `e2e-process_argus`.

fn main() -> std::process::ExitCode {
    process_argus::main()
}
