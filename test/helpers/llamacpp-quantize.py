"""llama.cpp's own quantizer (llama_model_quantize in node-llama-cpp's prebuilt libllama), called
through ctypes: writes a GGUF with llama.cpp's writer, for lsc to read.
usage: python3 llamacpp-quantize.py LIBLLAMA.so IN.gguf OUT.gguf FTYPE (2 Q4_0, 7 Q8_0) [pure] [output=T] [embd=T]
pure: every matrix in FTYPE's type (llama.cpp otherwise keeps the output matrix at Q8_0 or better);
output=T, embd=T: the ggml type number (0 F32, 1 F16, 2 Q4_0, 8 Q8_0) of output.weight / token_embd.weight"""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
# llama_model_quantize_params is returned by value (through a hidden pointer, x86-64 SysV and
# AArch64 alike); only nthread, ftype, output_tensor_type, token_embedding_type and pure are set
# (int32, int32, two int32 ggml types, then the bools allow_requantize, quantize_output_tensor,
# only_copy, pure: llama.h of node-llama-cpp 3.21.1; the caller checks the tensor types it gets)
params = (ctypes.c_uint8 * 1024)()
lib.llama_model_quantize_default_params.restype = None
lib.llama_model_quantize_default_params.argtypes = [ctypes.c_void_p]
lib.llama_model_quantize_default_params(ctypes.addressof(params))
fields = (ctypes.c_int32 * 4).from_buffer(params)
fields[0] = 1
fields[1] = int(sys.argv[4])
for arg in sys.argv[5:]:
    if arg == 'pure':
        params[19] = 1
    elif arg.startswith('output='):
        fields[2] = int(arg[7:])
    elif arg.startswith('embd='):
        fields[3] = int(arg[5:])
    else:
        sys.exit('unknown argument ' + arg)
lib.llama_backend_init()
lib.llama_model_quantize.restype = ctypes.c_uint32
lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
sys.exit(lib.llama_model_quantize(sys.argv[2].encode(), sys.argv[3].encode(), ctypes.addressof(params)))
