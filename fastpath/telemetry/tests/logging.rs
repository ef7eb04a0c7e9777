//! `init_logging` with a log file: lines land there, filtered by level; a second call fails.

use tortie_telemetry::{LogOptions, TelemetryError, init_logging};

#[test]
fn log_file_receives_filtered_json_lines() {
    let dir = std::env::temp_dir().join(format!("tortie-telemetry-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("daemon.log");
    let opts = LogOptions {
        level: "info".into(),
        file: Some(file.clone()),
        syslog: false,
        json: true,
    };
    init_logging(&opts).unwrap();
    tracing::info!(generation = 7, "snapshot applied");
    tracing::debug!("not shown at info");
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.contains("\"generation\":7") && text.contains("snapshot applied"),
        "{text}"
    );
    assert!(!text.contains("not shown"), "{text}");
    assert!(matches!(
        init_logging(&LogOptions::default()),
        Err(TelemetryError::AlreadyInitialised)
    ));
}
