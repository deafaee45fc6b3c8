//! The content seam on real argus files: the default check's verdicts, fed in pieces of any
//! size, are the walker's.

use std::path::Path;

use argus_ingest::content::{ArgusRecords, Content, Verdict};

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../argus-core/testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn verdict(data: &[u8], piece: usize) -> Verdict {
    let mut check = ArgusRecords.check();
    for chunk in data.chunks(piece) {
        if check.failed() {
            break;
        }
        check.feed(chunk);
    }
    check.finish()
}

#[test]
fn argus_records_are_counted_whatever_the_pieces() {
    for name in ["hostA.argus", "hostC.argus", "argus5/hostB.argus"] {
        let data = sample(name);
        let whole = verdict(&data, data.len());
        assert_eq!(whole.damage, None, "{name}");
        assert!(whole.records > 0 && whole.version.is_some(), "{name}");
        for piece in [1, 7, 4096] {
            assert_eq!(verdict(&data, piece), whole, "{name} in pieces of {piece}");
        }
    }
    assert!(ArgusRecords.by_record_time());
}

#[test]
fn a_cut_argus_file_is_damaged_after_its_whole_records() {
    let data = sample("hostA.truncated.argus");
    let v = verdict(&data, 1000);
    let damage = v.damage.expect("damaged");
    assert!(
        damage.reason.contains("argus data is damaged"),
        "{damage:?}"
    );
    assert!(damage.valid_len > 0 && damage.valid_len < data.len() as u64);
    // The whole records before the damage are a clean file of their own.
    let prefix = usize::try_from(damage.valid_len).expect("fits");
    let clean = verdict(&data[..prefix], 4096);
    assert_eq!((clean.damage, clean.records), (None, v.records));
}

#[test]
fn text_is_not_argus_and_says_so() {
    let v = verdict(b"Dec  6 02:00:01 web1 sshd[811]: Accepted publickey\n", 16);
    let damage = v.damage.expect("not argus");
    assert_eq!((damage.valid_len, v.records), (0, 0));
}
