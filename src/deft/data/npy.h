// NumPy's .npy and .npz files: reading, writing, and datasets made of them.
//
//   Tensor x = read_npy("x.npy");                 // '<f4' [100,3] -> float32 [100,3]
//   write_npy("out.npy", x);                      // atomic: temp file, fsync, rename
//   auto arrays = read_npz("data.npz");           // {"x_train": ..., "y_train": ...}
//   DatasetSplits d = load_npz_dataset("data.npz");
//
// NPY: format versions 1.0, 2.0 and 3.0, C order, little-endian, 0 to 4 dims.
// Element types and the dtype they load as:
//   '<f4' '<f8'                        -> Float32 (float64 rounded to nearest)
//   '<i8' '<i4' '<i2' '|i1' '<u2' '<u4' -> Int64 (exact)
//   '|u1' '|b1'                        -> UInt8
// Big-endian ('>f4'), fortran_order True, object/structured/string dtypes are
// InputErrors that say so. write_npy stores Float32 as '<f4', Int64 as '<i8',
// UInt8 as '|u1' (version 1.0 header, as np.save writes).
//
// NPZ: a ZIP archive of .npy files, as np.savez (stored) and np.savez_compressed
// (deflated) write it. The central directory is parsed here (no ZIP library);
// ZIP64 archives (over 4 GiB), encrypted entries and other compression methods
// are rejected with a clear message. Entry names lose their ".npy" suffix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deft/data/dataset.h"
#include "deft/tensor/tensor.h"

namespace deft::data {

// Parses one .npy file held in memory; `name` names it in error messages.
Tensor parse_npy(const uint8_t* data, size_t size, const std::string& name);
Tensor read_npy(const std::string& path);

// The bytes of a .npy file (version 1.0) holding `t` (any dims, made contiguous).
std::vector<uint8_t> encode_npy(const Tensor& t);
// Writes `t` to `path` atomically: a temporary file beside it, fsync, rename.
void write_npy(const std::string& path, const Tensor& t);

// Parses an .npz archive held in memory; keys are entry names without ".npy".
std::map<std::string, Tensor> parse_npz(const uint8_t* data, size_t size, const std::string& name);
std::map<std::string, Tensor> read_npz(const std::string& path);

// A dataset from named arrays: x/y (train only), or x_train/y_train with
// optional x_test/y_test and x_val/y_val (also "validation"). Feature layout:
//   [N,H,W] -> [N,1,H,W] images; [N,C,H,W] images kept; [N,H,W,C] with C in
//   {1,3,4} (and dim 1 not) -> permuted to [N,C,H,W]; [N,F] and [N] -> float32
//   tables [N,F] / [N,1]. Images keep uint8; other dtypes become float32.
// Labels: integer dtypes -> classification (int64, class names "0".."K-1"),
// float -> regression (float32). Missing labels (only x) -> unlabeled dataset.
// `source` names the origin in errors and in Dataset::source.
DatasetSplits dataset_from_arrays(const std::map<std::string, Tensor>& arrays, const std::string& source);

// An .npz file as a dataset (see dataset_from_arrays).
DatasetSplits load_npz_dataset(const std::string& path);
// A folder of .npy files named like the arrays above (x_train.npy, y_train.npy, ...).
DatasetSplits load_npy_folder(const std::string& dir);
// A single .npy file: an unlabeled dataset of its rows (e.g. inputs to predict).
DatasetSplits load_npy_file(const std::string& path);

}  // namespace deft::data
