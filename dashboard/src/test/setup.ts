import "@testing-library/jest-dom/vitest";

import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());

// findBy*/waitFor give up after 1 s by default; a loaded CI machine can take longer to render.
configure({ asyncUtilTimeout: 10_000 });
