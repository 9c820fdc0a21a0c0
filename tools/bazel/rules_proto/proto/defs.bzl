"""Native proto rules under the names rules_proto exports."""

proto_library = native.proto_library
proto_lang_toolchain = native.proto_lang_toolchain
