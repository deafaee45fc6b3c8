//! `harvest_argus`: the sensor side of argus-webjob. See SPEC §3 and §7, and the library.

fn main() -> std::process::ExitCode {
    harvest_argus::main()
}
