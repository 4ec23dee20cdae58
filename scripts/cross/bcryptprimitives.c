/*
 * bcryptprimitives.dll shim for Wine 8.0 (Debian 12).
 *
 * Rust >= 1.78's std on Windows imports ProcessPrng from bcryptprimitives.dll to fill its
 * random seeds. Wine 8.0 ships no bcryptprimitives.dll, so every Rust .exe fails at load
 * (exit 53). This DLL exports ProcessPrng and forwards it to RtlGenRandom
 * (SystemFunction036 in advapi32), which Wine does implement.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed it in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE; /* the real ProcessPrng always returns TRUE */
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
