use super::*;

fn sample_header() -> Header {
    Header {
        kind: kind::SYSCALL,
        ts_boot_ns: 42,
        tgid: 100,
        tid: 101,
        ppid: 1,
        syscall_nr: 257,
        ret: 3,
        args: [0xffff_ff9c, 0x7ffd_0000, 0, 0, 0, 0],
        comm: comm_bytes("cat"),
        ..Header::default()
    }
}

#[test]
fn built_records_decode_to_the_same_values() {
    let record_bytes = RecordBuilder::new(sample_header())
        .file(FileInfo {
            mode: 0o100640,
            flags: 0,
            ino: 7,
            dev: 2049,
            nlink: 1,
        })
        .path("/etc/shadow")
        .finish();
    let record = Record::decode(&record_bytes).expect("decodes");
    assert_eq!(record.header.tgid, 100);
    assert_eq!(record.header.ret, 3);
    assert_eq!(record.header.comm(), "cat");
    assert_eq!(record.params().len(), 2);
    assert_eq!(record.file_info().map(|file| file.ino), Some(7));
    assert_eq!(
        record
            .first(param::PATH)
            .map(crate::decode::path_from_components),
        Some("/etc/shadow".to_string())
    );
}

#[test]
fn every_truncation_of_a_record_is_an_error_not_a_panic() {
    let record_bytes = RecordBuilder::new(sample_header())
        .path("/var/log/syslog")
        .string("x")
        .finish();
    for cut in 0..record_bytes.len() {
        let mut shortened = record_bytes[..cut].to_vec();
        // keep the declared length consistent with what is given, to reach the param checks
        if shortened.len() >= HEADER_LEN {
            let len = u32::try_from(shortened.len()).expect("small").to_le_bytes();
            shortened[4..8].copy_from_slice(&len);
        }
        assert!(Record::decode(&shortened).is_err(), "cut at {cut} decoded");
    }
}

#[test]
fn bad_fields_are_named_errors() {
    let mut record_bytes = RecordBuilder::new(sample_header()).finish();
    record_bytes[0] = 99;
    assert_eq!(
        Record::decode(&record_bytes).map(|_| ()),
        Err(RecordError::UnknownKind { kind: 99 })
    );
    let mut record_bytes = RecordBuilder::new(sample_header()).finish();
    record_bytes[2] = 9;
    assert_eq!(
        Record::decode(&record_bytes).map(|_| ()),
        Err(RecordError::TooManyParams { count: 9 })
    );
    let mut record_bytes = RecordBuilder::new(sample_header()).string("abc").finish();
    record_bytes[HEADER_LEN] = 77;
    assert_eq!(
        Record::decode(&record_bytes).map(|_| ()),
        Err(RecordError::UnknownParam {
            index: 0,
            param_type: 77
        })
    );
    let mut record_bytes = RecordBuilder::new(sample_header()).finish();
    record_bytes[4..8].copy_from_slice(&9999u32.to_le_bytes());
    assert!(matches!(
        Record::decode(&record_bytes),
        Err(RecordError::BadLength { .. })
    ));
    assert!(matches!(
        Record::decode(&vec![0u8; RECORD_MAX + 1]),
        Err(RecordError::TooLarge { .. })
    ));
}

#[test]
fn constants_match_the_kernel_header() {
    let header_text = include_str!("../../bpf/palisade.h");
    let defined = |name: &str| -> u64 {
        let line = header_text
            .lines()
            .find(|line| line.starts_with(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} not in palisade.h"));
        let value = line.split_whitespace().nth(2).expect("value");
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).expect("hex"),
            None => value.parse().expect("decimal"),
        }
    };
    assert_eq!(defined("PAL_KIND_EXEC"), u64::from(kind::EXEC));
    assert_eq!(defined("PAL_KIND_CLONE"), u64::from(kind::CLONE));
    assert_eq!(defined("PAL_KIND_EXIT"), u64::from(kind::EXIT));
    assert_eq!(defined("PAL_KIND_SYSCALL"), u64::from(kind::SYSCALL));
    assert_eq!(
        defined("PAL_KIND_CGROUP_MKDIR"),
        u64::from(kind::CGROUP_MKDIR)
    );
    assert_eq!(defined("PAL_PARAM_STR"), u64::from(param::STR));
    assert_eq!(defined("PAL_PARAM_PATH"), u64::from(param::PATH));
    assert_eq!(defined("PAL_PARAM_ARGV"), u64::from(param::ARGV));
    assert_eq!(defined("PAL_PARAM_SOCK"), u64::from(param::SOCK));
    assert_eq!(defined("PAL_PARAM_FILE"), u64::from(param::FILE));
    assert_eq!(defined("PAL_PARAM_RAW"), u64::from(param::RAW));
    assert_eq!(
        defined("PAL_FLAG_PATH_TRUNCATED"),
        u64::from(flag::PATH_TRUNCATED)
    );
    assert_eq!(
        defined("PAL_FLAG_EXE_UPPER_LAYER"),
        u64::from(flag::EXE_UPPER_LAYER)
    );
    assert_eq!(defined("PAL_FLAG_EXE_MEMFD"), u64::from(flag::EXE_MEMFD));
    assert_eq!(defined("PAL_FLAG_GROUP_DEAD"), u64::from(flag::GROUP_DEAD));
    assert_eq!(
        defined("PAL_FILE_UPPER_LAYER"),
        u64::from(file_flag::UPPER_LAYER)
    );
    assert_eq!(defined("PAL_FILE_MEMFD"), u64::from(file_flag::MEMFD));
    assert_eq!(defined("PAL_RECORD_MAX"), RECORD_MAX as u64);
    assert_eq!(defined("PAL_MAX_PARAMS"), MAX_PARAMS as u64);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        fuzz_decode(&bytes);
    }

    #[test]
    fn arbitrary_params_on_a_valid_header_never_panic(
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        nparams in 0u16..10,
    ) {
        let mut header = sample_header();
        header.nparams = nparams;
        let mut bytes = RecordBuilder::new(header).finish();
        bytes.extend_from_slice(&tail);
        let len = u32::try_from(bytes.len()).expect("small").to_le_bytes();
        bytes[4..8].copy_from_slice(&len);
        bytes[2..4].copy_from_slice(&nparams.to_le_bytes());
        fuzz_decode(&bytes);
    }
}
