//! argus-proc
