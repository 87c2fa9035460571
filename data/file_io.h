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

}  // namespace sdlora::data
