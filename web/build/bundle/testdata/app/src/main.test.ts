throw new Error("a test file must not be an entry point");
