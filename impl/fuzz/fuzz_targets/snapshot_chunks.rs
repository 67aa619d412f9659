//! libFuzzer target `snapshot_chunks`: see `raft_fuzz::targets` for what it decodes and checks.
#![no_main]

#[global_allocator]
static ALLOC: raft_fuzz::alloc::CountingAlloc = raft_fuzz::alloc::CountingAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| raft_fuzz::fuzz_one("snapshot_chunks", data));
