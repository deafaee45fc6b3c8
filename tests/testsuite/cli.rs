//! The two programs alike on the command line: the same global options with the same short and
//! long forms, in the same place of a `--help` laid out the same way.

use test_support::bins::{SHARED_OPTIONS, assert_common_help, listed_options};

#[test]
fn both_programs_list_the_shared_options_alike() {
    let shared = |program: &str| -> Vec<String> {
        listed_options(&assert_common_help(program))
            .into_iter()
            .filter(|o| SHARED_OPTIONS.contains(&o.as_str()))
            .collect()
    };
    let harvest = shared("harvest_argus");
    assert_eq!(harvest, SHARED_OPTIONS, "harvest_argus --help");
    assert_eq!(shared("process_argus"), harvest, "process_argus --help");
}
