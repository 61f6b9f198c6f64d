// Sizes and field offsets of the public structs as this library was compiled (mc_get_struct_layout), so the
// generated C# declarations can verify their layouts against the loaded binary.
#pragma once

#include <cstdint>
#include <vector>

namespace moecutlass {

struct StructLayoutEntry {
  const char* struct_name;
  const char* field_name;  // nullptr: the entry is the struct itself and `value` its size
  int64_t value;           // sizeof the struct, or offsetof the field
};

const std::vector<StructLayoutEntry>& struct_layout_table();

// Finds the entry; field_name nullptr or "" asks for the struct size. Returns nullptr when unknown.
const StructLayoutEntry* find_struct_layout(const char* struct_name, const char* field_name);

}  // namespace moecutlass
