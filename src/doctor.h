// mbx doctor: what this machine offers mbx, each item with how to fix it.
#pragma once

namespace mbx {

struct DoctorArgs {
    bool json = false;
};

// Exit status 0 when mbx run can work here (user namespaces and FUSE), else 1.
int cmd_doctor(const DoctorArgs& a);

}  // namespace mbx
