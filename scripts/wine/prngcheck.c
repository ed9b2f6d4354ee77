/*
 * prngcheck: run by scripts/wine/prefix.sh under Wine to check that the
 * stand-in bcryptprimitives.dll loads from system32 and answers ProcessPrng
 * the way Go's runtime calls it. Exit 0 when it does.
 */
#include <windows.h>
#include <stdio.h>

typedef BOOL(WINAPI *prng_fn)(PBYTE, SIZE_T);

int main(void)
{
	BYTE buf[64] = {0};
	HMODULE m = LoadLibraryExW(L"bcryptprimitives.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
	prng_fn prng;
	int i, zero = 0;

	if (m == NULL) {
		printf("prngcheck: bcryptprimitives.dll not found in system32 (error %lu)\n", GetLastError());
		return 1;
	}
	prng = (prng_fn)GetProcAddress(m, "ProcessPrng");
	if (prng == NULL) {
		printf("prngcheck: bcryptprimitives.dll has no ProcessPrng\n");
		return 1;
	}
	if (!prng(buf, sizeof buf)) {
		printf("prngcheck: ProcessPrng failed\n");
		return 1;
	}
	for (i = 0; i < (int)sizeof buf; i++)
		zero += buf[i] == 0;
	if (zero == (int)sizeof buf) {
		printf("prngcheck: ProcessPrng returned only zeros\n");
		return 1;
	}
	printf("prngcheck: ProcessPrng works\n");
	return 0;
}
