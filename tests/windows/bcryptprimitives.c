/* bcryptprimitives.dll for Wine 8 (Debian 12), which has none: Rust's std
 * (1.78 and later) draws its random keys from ProcessPrng in this DLL, which
 * Windows has had since Windows 10, and ferryd.exe does not start without
 * it. Newer Wine ships the DLL; conftest.py builds this stand-in with
 * mingw-w64 only for a prefix that lacks it. It asks bcrypt's system RNG,
 * which Wine 8 has. Test scaffolding: nothing of it reaches ferryd.exe. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
