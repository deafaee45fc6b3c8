//! `harvest_argus` for the end-to-end tests: the program itself, built as `e2e-harvest_argus`.

fn main() -> std::process::ExitCode {
    harvest_argus::main()
}
