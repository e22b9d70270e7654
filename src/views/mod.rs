//! Pure render functions over snapshots (text for the headless commands).

pub mod status_text;
