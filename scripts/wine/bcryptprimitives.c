/*
 * A test-only stand-in for Windows' bcryptprimitives.dll, for running Go's
 * Windows test binaries under Wine (make test-windows). NOT part of Wharf.
 *
 * Since Go 1.22 the Windows runtime takes its random numbers from
 * ProcessPrng in bcryptprimitives.dll and dies at start ("fatal error:
 * bcryptprimitives.dll not found") where the DLL is missing, as it is in
 * Debian 12's Wine 8.0. This DLL exports ProcessPrng over RtlGenRandom
 * (SystemFunction036 in advapi32), which Wine has. scripts/wine/prefix.sh
 * builds it with Debian's mingw-w64 cross compiler and copies it into the
 * test Wine prefix's system32; nothing else ever uses it.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng fills data with n random bytes; it always succeeds on
 * Windows, and here fails only if RtlGenRandom does. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T n)
{
	while (n > 0) {
		ULONG chunk = n > 0x40000000 ? 0x40000000 : (ULONG)n;
		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		n -= chunk;
	}
	return TRUE;
}
