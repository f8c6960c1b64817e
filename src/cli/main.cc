// ztrain command-line entry point (placeholder until the demo lands).
#include <cstdio>
int main() { std::puts("ztrain"); return 0; }
