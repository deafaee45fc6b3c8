//! webjob-drop
