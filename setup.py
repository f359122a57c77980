"""Packaging for the Tornado OpenID Connect microservices."""

from setuptools import find_packages, setup

setup(
    name="tornado-oidc-movies",
    version="0.1.0",
    description=(
        "An OpenID Connect provider, a JWT-protected movies API, a browser client "
        "and an API gateway, built on Tornado, Redis and MongoDB"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=[
        "servicekit", "servicekit.*",
        "identity_srv", "identity_srv.*",
        "movies_srv", "movies_srv.*",
        "webclient_srv", "webclient_srv.*",
        "gateway_srv", "gateway_srv.*",
    ]),
    include_package_data=True,
    package_data={"": ["templates/*.html", "static/*"]},
    # Lower bounds are the versions the test suite ran against.
    install_requires=[
        "tornado>=6.4",
        "redis[hiredis]>=5.0",
        "PyJWT[crypto]>=2.10",
        "cryptography>=43",
        "bcrypt>=4.2",
        "pymongo>=4.13",
        "aiohttp>=3.14",
        # A faster event loop for every service (http.event_loop); Linux and macOS only.
        "uvloop>=0.21; sys_platform != 'win32'",
    ],
    extras_require={
        "test": [
            "pytest>=8.3",
            "pytest-tornado>=0.8.1",
            "secantusdb>=0.7.0b3",
            "Authlib>=1.5",
            # Authlib's OAuth 2 client runs on requests in the sign-in tests.
            "requests>=2.32",
            "hypothesis>=6.120",
            # Drives Debian's /usr/bin/chromium in the webclient browser tests.
            "playwright>=1.65",
        ],
        "dev": [
            "secantusdb>=0.7.0b3",
            "ruff>=0.8",
        ],
        # Latency plots of `make bench`; bench/suite.py skips them without it.
        "bench": [
            "matplotlib>=3.8",
        ],
    },
    entry_points={
        "console_scripts": [
            "identity-srv=identity_srv.__main__:main",
            "movies-srv=movies_srv.__main__:main",
            "webclient-srv=webclient_srv.__main__:main",
            "gateway-srv=gateway_srv.__main__:main",
        ],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Framework :: Tornado",
    ],
)
