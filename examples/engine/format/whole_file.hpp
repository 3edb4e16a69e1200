//! @file
//! Reading a small file whole, with the refusals every format reader words the same way.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace skipllm::engine {

//! The contents of `path`, or an `Error` saying "<what> <path> is a directory" or
//! "cannot read <what> <path>: <reason>". Error is the reader's own exception type, so a caller
//! catching that type sees every failure of the format, the file system's included.
template <class Error>
std::string read_whole_file(std::filesystem::path const& path, std::string const& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(what + " " + path.string() + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + what + " " + path.string() + ": " + std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace skipllm::engine
