import { twice } from "./lib/twice.ts";

document.title = twice("other");
