// libFuzzer target: mbx-guardd's request decoder (src/guard_protocol.cpp) on
// any bytes. It must refuse with UserError or decode; never crash, hang or
// read out of bounds (built with ASan and UBSan by tests/e2e/test-fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string>

#include "src/error.h"
#include "src/guard_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string request(reinterpret_cast<const char*>(data), size);
    try {
        mbx::GuardPolicy p = mbx::decode_enroll(request);
        // What decodes encodes again to something that decodes the same.
        mbx::GuardPolicy q = mbx::decode_enroll(mbx::encode_enroll(p));
        if (q.exec.allow != p.exec.allow || q.writable_devs != p.writable_devs) __builtin_trap();
    } catch (const mbx::UserError&) {
    }
    return 0;
}
