// Whole-file reads for the dataset readers, with errors that name the file: plain files, and
// files that may be gzip-compressed (decompressed transparently through zlib).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdlora::data {

// The bytes of a file; throws naming the path when it is missing or unreadable.
std::vector<uint8_t> read_file(const std::string& path);
// The bytes of a file, gunzipped when it starts with the gzip magic; throws naming the path on
// missing files and on corrupt or truncated gzip streams.
std::vector<uint8_t> read_file_maybe_gzip(const std::string& path);
// Writes bytes to a file, replacing it (through a temporary file and a rename, so a reader
// never sees half a file); throws naming the path.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Crash testing (scripts/crash-test.sh): with SDLORA_CRASH_AT=<file name>:<n>:<before|after> in
// the environment, the n-th atomic write (from 1) of a file of that name (no folder) in this
// process ends the process with _exit(86) just before or just after its rename. Called by
// write_file_atomic and by save_safetensors (nn/safetensors.cpp reads the same variable).
void crash_point(const std::string& path, bool after_rename);

}  // namespace sdlora::data
