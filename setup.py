"""Build the optional C extension klog._native.

A missing compiler or headers must not break the install: klog then runs on the
pure-Python twin (klog._native_py) and says so once at startup.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure means "use the twin"
            self.warn(f"klog._native not built ({exc}); the pure-Python twin will be used")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.warn(f"klog._native not built ({exc}); the pure-Python twin will be used")


setup(
    ext_modules=[
        Extension(
            "klog._native",
            sources=["native/_native.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
