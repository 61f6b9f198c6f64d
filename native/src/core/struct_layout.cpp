#include "core/struct_layout.hpp"

#include <cstddef>
#include <cstring>

#include "moecutlass/moecutlass.h"

namespace moecutlass {

const std::vector<StructLayoutEntry>& struct_layout_table() {
  // struct_layout_table.inc lists every public struct and field. The bindings generator writes it from the
  // header, so a field added to the header without regenerating fails to compile here rather than drifting.
  static const std::vector<StructLayoutEntry> table = {
#define MC_LAYOUT_STRUCT(type) {#type, nullptr, static_cast<int64_t>(sizeof(type))},
#define MC_LAYOUT_FIELD(type, field) {#type, #field, static_cast<int64_t>(offsetof(type, field))},
#include "core/struct_layout_table.inc"
#undef MC_LAYOUT_FIELD
#undef MC_LAYOUT_STRUCT
  };
  return table;
}

const StructLayoutEntry* find_struct_layout(const char* struct_name, const char* field_name) {
  const bool whole_struct = field_name == nullptr || field_name[0] == '\0';
  for (const StructLayoutEntry& entry : struct_layout_table()) {
    if (std::strcmp(entry.struct_name, struct_name) != 0) continue;
    if (whole_struct ? entry.field_name == nullptr
                     : entry.field_name != nullptr && std::strcmp(entry.field_name, field_name) == 0) {
      return &entry;
    }
  }
  return nullptr;
}

}  // namespace moecutlass
