import { hello } from "../../sdk/src/index.ts";
import { twice } from "./lib/twice.ts";

document.body.textContent = twice(hello("main"));
