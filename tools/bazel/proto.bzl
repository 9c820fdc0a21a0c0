"""C++ code generation from .proto files with the system protoc and grpc_cpp_plugin.

Bazel 4's native cc_proto_library would need @com_google_protobuf (a download); the system
compiler from Debian's protobuf-compiler and protobuf-compiler-grpc produces code matching the
system libprotobuf and libgrpc++ exactly, which the native rule could not guarantee.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

def cc_proto_grpc_library(name, srcs, proto_root = "proto", grpc = False, deps = [], visibility = None):
    """Generates C++ (and optionally gRPC) code for `srcs` and wraps it in a cc_library.

    Args:
      name: the cc_library's name.
      srcs: .proto files of this package, importable relative to `proto_root`.
      proto_root: the workspace folder that import paths are relative to.
      grpc: also run grpc_cpp_plugin (for files declaring services).
      deps: other cc_proto_grpc_library targets whose protos `srcs` import.
      visibility: visibility of the cc_library.
    """
    outs = []
    hdrs = []
    for src in srcs:
        base = src[:-len(".proto")]
        hdrs.append(base + ".pb.h")
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            hdrs.append(base + ".grpc.pb.h")
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    plugin = ""
    if grpc:
        plugin = ("--grpc_out=$(GENDIR)/{root} " +
                  "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) ").format(root = proto_root)

    native.genrule(
        name = name + "_codegen",
        srcs = srcs + [d + "_protos" for d in deps],
        outs = outs,
        cmd = ("protoc -I{root} -I/usr/include --cpp_out=$(GENDIR)/{root} {plugin}" +
               "$(locations {first})").format(
            root = proto_root,
            plugin = plugin,
            first = ":" + name + "_srcs",
        ),
        tools = [":" + name + "_srcs"],
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs,
    )
    native.filegroup(
        name = name + "_protos",
        srcs = srcs,
        visibility = ["//visibility:public"],
    )
    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = hdrs,
        strip_include_prefix = "/" + proto_root,
        visibility = visibility,
        deps = deps + ["@system_protobuf//:protobuf"] + (["@system_grpc//:grpc"] if grpc else []),
    )
