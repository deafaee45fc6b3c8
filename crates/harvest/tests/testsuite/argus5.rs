//! harvest_argus takes an argus 5 binary exactly as it takes an argus 3 one. (The live argus 5
//! harvest, which ends in process_argus, is in process_argus' suite.)

use test_support::sensor as harvest;

#[test]
fn check_config_takes_an_argus5_binary_as_it_takes_argus3() {
    const TEST: &str = "check_config_takes_an_argus5_binary_as_it_takes_argus3";
    let Some(prefix) = test_support::tools::argus5_prefix(TEST) else {
        return;
    };
    let argus5 = prefix.join("sbin/argus");
    for bin in [argus5.as_path(), std::path::Path::new(harvest::ARGUS)] {
        if !bin.exists() {
            assert!(
                !test_support::tools::in_ci(),
                "{} is required under CI",
                bin.display()
            );
            continue;
        }
        let sensor = harvest::Sensor::with_argus(bin, harvest::ARGS, "");
        let out = sensor
            .command(&sensor.config)
            .arg("check-config")
            .output()
            .expect("run check-config");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("\nargus_bin = {} (file)\n", bin.display())),
            "{text}"
        );
    }
}
